import { registry } from "@web/core/registry";
import * as tourUtils from "@website_sale/js/tours/tour_utils";

function goTo(path) {
    return {
        content: `Go to ${path}`,
        trigger: "body",
        run() {
            window.location.href = window.location.origin + path;
        },
    };
}

function buyLicenses(quantity) {
    return [
        goTo("/shop?search=Office%20Home%202024"),
        {
            content: "Open the license product",
            trigger: ".oe_product_cart a:contains(Office Home 2024)",
            run: "click",
        },
        {
            content: "It says how the license is delivered",
            trigger: ".o_esd_delivery_note:contains(delivered by email)",
        },
        {
            content: `Ask for ${quantity} licenses`,
            trigger: 'input[name="add_qty"]',
            run: `edit ${quantity}`,
        },
        {
            content: "Add them to the cart",
            trigger: "#add_to_cart",
            run: "click",
        },
        tourUtils.goToCart({ quantity }),
        tourUtils.goToCheckout(),
        {
            content: "The reseller is asked whom the licenses are for",
            trigger: "h3:contains(Whom are these licenses for?)",
        },
    ];
}

function payAndSeeDelivered(count) {
    return [
        {
            content: "The payment page",
            trigger: 'input[name="o_payment_radio"]',
        },
        ...tourUtils.payWithDemo(),
        {
            content: "The licenses are listed on the confirmation page",
            trigger: ".o_esd_order_licenses h4:contains(Your Microsoft licenses)",
        },
        {
            content: "...and shown delivered without reloading, once the job has run",
            trigger: `.o_esd_order_licenses[data-done="1"][data-delivered="${count}"]`,
            timeout: 60000,
        },
    ];
}

registry.category("web_tour.tours").add("esd_shop_reseller_tour", {
    url: "/shop",
    steps: () => [
        // Two licenses for a new customer.
        ...buyLicenses(2),
        {
            content: "For a new customer",
            trigger: "#esd_mode_new",
            run: "click",
        },
        { trigger: "#esd_new_name", run: "edit Litware Inc" },
        { trigger: "#esd_new_email", run: "edit licensing@litware.example" },
        { trigger: "#esd_new_phone", run: "edit +1 518 555 0199" },
        { trigger: "#esd_new_street", run: "edit 2 Side Street" },
        { trigger: "#esd_new_zip", run: "edit 12207" },
        { trigger: "#esd_new_city", run: "edit Albany" },
        { trigger: "#esd_new_country", run: "selectByLabel United States" },
        { trigger: "#esd_new_state", run: "selectByLabel New York" },
        {
            content: "Continue to the payment",
            trigger: "button.o_esd_continue",
            run: "click",
        },
        ...payAndSeeDelivered(2),
        // One license for a customer it ordered for before.
        ...buyLicenses(1),
        {
            content: "Northwind Traders is one of its customers",
            trigger: ".o_esd_end_customer:contains(Northwind Traders) input",
            run: "click",
        },
        {
            content: "Continue to the payment",
            trigger: "button.o_esd_continue",
            run: "click",
        },
        ...payAndSeeDelivered(1),
        // Its licenses, per customer.
        goTo("/my/esd"),
        {
            content: "Litware's licenses are in the reseller's portal",
            trigger: ".o_esd_portal_row + .o_esd_portal_row, tbody:has(th:contains(Litware Inc))",
        },
        {
            content: "...as Northwind's",
            trigger: "tbody:has(th:contains(Northwind Traders))",
        },
    ],
});
