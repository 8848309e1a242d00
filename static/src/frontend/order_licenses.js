import publicWidget from "@web/legacy/js/public/public_widget";
import { rpc } from "@web/core/network/rpc";

/**
 * The licenses of an order on its confirmation and portal pages: refreshed, less and less often,
 * until none is being prepared, so the buyer sees them delivered without reloading the page.
 */
publicWidget.registry.EsdOrderLicenses = publicWidget.Widget.extend({
    selector: ".o_esd_order_licenses",

    start() {
        this.delay = 2000;
        if (this.el.dataset.done !== "1") {
            this._schedule();
        }
        return this._super(...arguments);
    },

    destroy() {
        clearTimeout(this.timer);
        this._super(...arguments);
    },

    _schedule() {
        this.timer = setTimeout(() => this._refresh(), this.delay);
    },

    async _refresh() {
        const { orderId, accessToken } = this.el.dataset;
        const result = await rpc(`/my/orders/${orderId}/esd_licenses`, {
            access_token: accessToken,
        });
        this.el.querySelector(".o_esd_order_licenses_body").innerHTML = result.html;
        this.el.dataset.done = result.done ? "1" : "0";
        this.el.dataset.delivered = result.delivered;
        if (!result.done) {
            this.delay = Math.min(this.delay * 1.5, 30000);
            this._schedule();
        }
    },
});
