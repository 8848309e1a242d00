import { Component, onWillStart, useState } from "@odoo/owl";
import { _t } from "@web/core/l10n/translation";
import { CopyButton } from "@web/core/copy_button/copy_button";
import { registry } from "@web/core/registry";
import { user } from "@web/core/user";
import { useService } from "@web/core/utils/hooks";
import { standardFieldProps } from "@web/views/fields/standard_field_props";

/**
 * A license key: masked as the server computed it for this user; ESD users press "Reveal key",
 * which asks the server (it records who revealed it in the chatter) and shows the key until
 * "Hide" or the next record.
 */
export class LicenseKeyField extends Component {
    static template = "microsoft_esd.LicenseKeyField";
    static components = { CopyButton };
    static props = { ...standardFieldProps };

    setup() {
        this.orm = useService("orm");
        this.state = useState({ revealed: null, resId: null });
        onWillStart(async () => {
            this.isEsdUser = await user.hasGroup("microsoft_esd.group_esd_user");
        });
    }

    get value() {
        return this.props.record.data[this.props.name] || "";
    }

    get revealed() {
        // A revealed key belongs to the record it was revealed on.
        return this.state.resId === this.props.record.resId ? this.state.revealed : null;
    }

    get canReveal() {
        return this.isEsdUser && this.value.startsWith("*") && !this.revealed;
    }

    get copiedText() {
        return _t("Copied");
    }

    async reveal() {
        const resId = this.props.record.resId;
        const revealed = await this.orm.call("esd.asset", "esd_reveal_key", [[resId]]);
        Object.assign(this.state, { revealed, resId });
        // The chatter shows the "revealed" note it just got.
        await this.props.record.load();
    }

    hide() {
        Object.assign(this.state, { revealed: null, resId: null });
    }
}

registry.category("fields").add("esd_license_key", {
    component: LicenseKeyField,
    displayName: _t("License key"),
    supportedTypes: ["char"],
});
