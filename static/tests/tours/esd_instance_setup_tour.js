import { registry } from "@web/core/registry";
import { rpc } from "@web/core/network/rpc";

// What CONFIGURE tells the integrator to type: the simulator's instance.json, which the test
// puts in a system parameter of its own database.
const typed = {};

async function readInstanceJson() {
    const raw = await rpc("/web/dataset/call_kw/ir.config_parameter/get_param", {
        model: "ir.config_parameter",
        method: "get_param",
        args: ["microsoft_esd.tour_instance_json"],
        kwargs: {},
    });
    Object.assign(typed, JSON.parse(raw));
}

function type(field, value) {
    return {
        content: `Type the ${field}`,
        trigger: `.o_field_widget[name=${field}] input`,
        async run(helpers) {
            await helpers.edit(value(), `.o_field_widget[name=${field}] input`);
        },
    };
}

function upload(name) {
    // What the browser does when a file is chosen in the certificate field's file dialog.
    return {
        content: `Choose the certificate file ${name}`,
        trigger: ".o_field_widget[name=certificate_file] .o_select_file_button",
        run() {
            const bytes = Uint8Array.from(atob(typed.certificate), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "application/x-pkcs12" }));
            const input = document.querySelector(
                ".o_field_widget[name=certificate_file] input.o_input_file"
            );
            input.files = transfer.files;
            input.dispatchEvent(new Event("change", { bubbles: true }));
        },
    };
}

async function typePassword(helpers) {
    // Typed, then the field is left (the browser's change event), as a person does.
    await helpers.edit(typed.certificate_password);
    document
        .querySelector(".o_field_widget[name=certificate_password] input")
        .dispatchEvent(new Event("change", { bubbles: true }));
}

registry.category("web_tour.tours").add("esd_instance_setup_tour", {
    url: "/odoo/action-microsoft_esd.action_esd_instance",
    steps: () => [
        {
            content: "Read what CONFIGURE says to type",
            trigger: ".o_list_button_add, .o_view_nocontent",
            run: readInstanceJson,
        },
        {
            content: "New instance",
            trigger: ".o_list_button_add",
            run: "click",
        },
        {
            content: "Name it",
            trigger: ".o_field_widget[name=name] input",
            run: "edit Contoso US (tour)",
        },
        type("service_url", () => typed.service_url),
        type("resource_api", () => typed.resource_api),
        type("tenant", () => typed.tenant),
        type("channel_id", () => typed.channel_id),
        type("client_id", () => typed.client_id),
        type("authority", () => typed.authority),
        type("ca_bundle", () => typed.ca_bundle),
        {
            content: "The certificate comes once the connection is saved",
            trigger: ".alert-info:contains(Save the connection settings first)",
        },
        {
            content: "Save",
            trigger: ".o_form_button_save",
            run: "click",
        },
        {
            content: "Saved: the certificate step opens",
            trigger: ".o_form_saved .o_field_widget[name=certificate_file]",
        },
        upload("client.pfx"),
        {
            content: "Without its password the file cannot be opened: said in the form",
            trigger: ".alert-danger:contains(password is wrong)",
        },
        {
            content: "Type the password",
            trigger: ".o_field_widget[name=certificate_password] input",
            run: typePassword,
        },
        {
            content: "The certificate opens: its thumbprint shows",
            trigger: ".o_field_widget[name=thumbprint] span:not(:empty)",
        },
        {
            content: "Type the password again, then choose the file again (the other order)",
            trigger: ".o_field_widget[name=certificate_password] input",
            run: typePassword,
        },
        upload("client-again.pfx"),
        {
            content: "No error with the password typed first",
            trigger: ".o_field_widget[name=thumbprint] span:not(:empty)",
            run() {
                if (document.querySelector(".o_form_view .alert-danger:not(.d-none)")) {
                    throw new Error("the certificate was refused");
                }
            },
        },
        {
            content: "Choose the country",
            trigger: ".o_field_widget[name=country_id] input",
            run: "edit United States",
        },
        {
            content: "United States",
            trigger: ".o-autocomplete--dropdown-item a:contains(United States)",
            run: "click",
        },
        {
            content: "Catalog language",
            trigger: ".o_field_widget[name=lang] select",
            run: 'select "en_US"',
        },
        {
            content: "Save",
            trigger: ".o_form_button_save",
            run: "click",
        },
        {
            content: "Test Connection",
            trigger: ".o_form_saved button[name=action_test_connection]",
            run: "click",
        },
        {
            content: "Connected",
            trigger: ".o_statusbar_status .o_arrow_button_current:contains(Connected)",
        },
        {
            content: "Get Services Definition",
            trigger: "button[name=action_get_services_definition]",
            run: "click",
        },
        {
            content: "The summary of the sync: the new products",
            trigger: ".modal button[name=action_open_new]",
            run: "click",
        },
        {
            content: "The new products of the catalog",
            trigger: ".o_list_view .o_data_row td:contains(Office Home 2024)",
        },
        {
            content: "Select Office Home 2024",
            trigger: ".o_data_row:has(td:contains(Office Home 2024)) .o_list_record_selector input",
            run: "click",
        },
        {
            content: "Select Windows 11 Pro",
            trigger: ".o_data_row:has(td:contains(Windows 11 Pro)) .o_list_record_selector input",
            run: "click",
        },
        {
            content: "Price the selection: click a sales price of a selected row",
            trigger:
                ".o_data_row.o_data_row_selected:has(td:contains(Office Home 2024)) td[name=list_price]",
            run: "click",
        },
        {
            content: "Type the price",
            trigger: ".o_data_row .o_field_widget[name=list_price] input",
            run: "edit 149",
        },
        {
            content: "Leave the cell",
            trigger: ".o_list_view",
            run: "click",
        },
        {
            content: "Set it on both selected products",
            trigger: ".modal .modal-footer .btn-primary",
            run: "click",
        },
        {
            content: "Priced",
            trigger: ".o_data_row:has(td:contains(Windows 11 Pro)) td[name=list_price]:contains(149)",
        },
        {
            content: "Actions",
            trigger: ".o_cp_action_menus .dropdown-toggle",
            run: "click",
        },
        {
            content: "Activate for sale",
            trigger: ".o-dropdown--menu .dropdown-item:contains(Activate for sale)",
            run: "click",
        },
        {
            content: "Activated",
            trigger: ".o_notification:contains(2 products can now be sold)",
        },
        {
            content: "Select Office Home 2024 again (the list reloaded)",
            trigger: ".o_data_row:has(td:contains(Office Home 2024)) .o_list_record_selector input",
            run: "click",
        },
        {
            content: "Select Windows 11 Pro again",
            trigger: ".o_data_row:has(td:contains(Windows 11 Pro)) .o_list_record_selector input",
            run: "click",
        },
        {
            content: "Actions",
            trigger: ".o_cp_action_menus .dropdown-toggle",
            run: "click",
        },
        {
            content: "Publish on website",
            trigger: ".o-dropdown--menu .dropdown-item:contains(Publish on website)",
            run: "click",
        },
        {
            content: "Published",
            trigger: ".o_notification:contains(2 products are in the shop)",
        },
    ],
});
