-- A neutralized copy (staging, test) must never order a real license: disable every ESD instance
-- and clear its credentials.
UPDATE esd_instance
   SET active = false,
       state = 'draft',
       certificate_password = NULL,
       client_id = 'neutralized',
       last_error = 'Neutralized database: credentials removed.';
DELETE FROM ir_attachment
 WHERE res_model = 'esd.instance'
   AND res_field = 'certificate_file';
UPDATE ir_cron
   SET active = false
 WHERE id IN (SELECT res_id FROM ir_model_data
               WHERE module = 'microsoft_esd' AND model = 'ir.cron');
