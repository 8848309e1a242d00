import { registry } from "@web/core/registry";

// Settings > Sales > Microsoft ESD > License Keys at Rest, for each state of esd_token_key in the
// configuration file (the test sets it before each tour).
function openEsdSettings() {
    return [
        {
            content: "The Sales settings",
            trigger: ".settings_tab [data-key=sale_management]",
            run: "click",
        },
        {
            content: "Microsoft ESD's block",
            trigger: "#esd_keys",
        },
    ];
}

function tour(name, steps) {
    registry.category("web_tour.tours").add(name, {
        url: "/odoo/settings",
        steps: () => [...openEsdSettings(), ...steps],
    });
}

tour("esd_settings_keys_clear_tour", [
    {
        content: "No secret: sealed with the database's own secret only",
        trigger: "#esd_keys .o_esd_keys_clear:visible",
    },
    {
        content: "and not said to be encrypted",
        trigger: "#esd_keys:not(:has(.o_esd_keys_encrypted:visible))",
    },
]);

tour("esd_settings_keys_encrypted_tour", [
    {
        content: "A valid secret: encrypted with esd_token_key",
        trigger: "#esd_keys .o_esd_keys_encrypted:visible",
    },
    {
        content: "and not said to be in clear",
        trigger: "#esd_keys:not(:has(.o_esd_keys_clear:visible))",
    },
]);

tour("esd_settings_keys_weak_tour", [
    {
        content: "A too-short secret: the reason and what a good one is",
        trigger: "#esd_keys .text-danger:contains(too weak):contains(at least 32 random characters)",
    },
]);

tour("esd_settings_keys_rotation_tour", [
    {
        content: "After a rotation: how many keys are sealed with an old secret",
        trigger: "#esd_keys:contains(2 license keys are not sealed with the current secret yet)",
    },
    {
        content: "Re-encrypt license keys",
        trigger: "#esd_keys button[name=action_esd_reencrypt_keys]",
        run: "click",
    },
    {
        content: "Confirm",
        trigger: ".modal .modal-footer .btn-primary",
        run: "click",
    },
    {
        content: "Done",
        trigger: ".o_notification:contains(2 license keys are now sealed with the current secret)",
    },
]);
