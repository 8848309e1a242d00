"""18.0.1.5.0: returns are carried out by the returns cron alone; its grace period is gone."""


def migrate(cr, version):
    if not version:
        return
    # The returns cron no longer waits for the request that recorded a return: Cancel License
    # records it and the cron calls CIS. A return still "requested" is taken up at its next run.
    cr.execute("DELETE FROM ir_config_parameter WHERE key = 'microsoft_esd.return_grace_seconds'")
