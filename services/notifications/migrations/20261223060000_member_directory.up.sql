-- The member directory: member_settings already records every member who calls the service
-- (their token email and admin role, refreshed when they change); it also records their name
-- and when they were last seen (refreshed at most hourly, so a steady caller writes nothing).
-- A failed auto-recharge emails every known admin of the organization.
ALTER TABLE member_settings
    ADD COLUMN member_name  text        NOT NULL DEFAULT '',
    ADD COLUMN last_seen_at timestamptz NOT NULL DEFAULT now();

CREATE INDEX member_settings_admins ON member_settings (org_id, member_id) WHERE is_admin;
