import { registry } from "@web/core/registry";

registry.category("web_tour.tours").add("esd_portal_tour", {
    url: "/my/esd",
    steps: () => [
        {
            content: "Open a license from the list",
            trigger: ".o_esd_portal_row a",
            run: "click",
        },
        {
            content: "The license key is shown to its customer",
            trigger: ".o_esd_token:contains('-')",
        },
        {
            content: "Resend the activation link",
            trigger: "button.o_esd_resend",
            run: "click",
        },
        {
            content: "A visible confirmation",
            trigger: ".o_esd_message:contains('on its way')",
        },
    ],
});
