"""18.0.1.7.7: the license email and reseller webhook crons run before the provisioning crons
when a cron runner finds them ready together (priority 4). Their data is not updated on upgrade
(noupdate): a priority an operator changed from Odoo's default is kept."""

CRONS = ("ir_cron_esd_welcome", "ir_cron_esd_webhooks")


def migrate(cr, version):
    if not version:
        return
    cr.execute(
        """
        UPDATE ir_cron SET priority = 4
         WHERE priority = 5
           AND id IN (SELECT res_id FROM ir_model_data
                       WHERE module = 'microsoft_esd' AND model = 'ir.cron' AND name IN %s)
        """,
        [CRONS],
    )
