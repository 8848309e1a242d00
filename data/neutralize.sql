-- A neutralized copy (staging, test) never orders a real license and holds no usable secret.
-- Instances: disabled, credentials gone.
UPDATE esd_instance
   SET active = false,
       state = 'draft',
       certificate_password = NULL,
       thumbprint = NULL,
       certificate_expiry = NULL,
       client_id = 'neutralized',
       last_error = 'Neutralized database: credentials removed.';
-- Certificates: detached here (SQL cannot empty the filestore); the first start of the copy
-- deletes them through the ORM, so their files leave the filestore (esd.instance._register_hook).
UPDATE ir_attachment
   SET res_model = 'esd.neutralized.certificate',
       res_field = NULL,
       res_id = 0,
       name = 'neutralized certificate'
 WHERE res_model = 'esd.instance'
   AND res_field = 'certificate_file';
-- License keys, activation links and share links: gone; the last 5 characters stay.
UPDATE esd_asset
   SET token_sealed = NULL,
       activation_link_sealed = NULL,
       token_hash = NULL,
       access_token = NULL,
       welcome_pending = false;
-- Queued license emails, with their messages (a mail_mail row is a mail_message row too): they
-- hold placeholders, not keys, but the copy never sends them.
DELETE FROM mail_message
 WHERE id IN (SELECT mail_message_id FROM mail_mail WHERE esd_asset_id IS NOT NULL);
DELETE FROM mail_mail WHERE esd_asset_id IS NOT NULL;
UPDATE ir_cron
   SET active = false
 WHERE id IN (SELECT res_id FROM ir_model_data
               WHERE module = 'microsoft_esd' AND model = 'ir.cron');
