-- tokenward schema 2 (API v1.1): `verify`, `routes` and `audit` became built-in
-- scopes. A catalog scope of one of those names would silently turn into the
-- built-in (a token that could read an `audit` catalog resource would read the
-- audit log), so such catalog scopes are renamed `<name>-scope`, in the catalog,
-- on every token and in every member's grants.

UPDATE scope_catalog SET name = 'verify-scope'
WHERE name = 'verify' AND NOT EXISTS (
    SELECT 1 FROM scope_catalog other
    WHERE other.workspace_id = scope_catalog.workspace_id AND other.name = 'verify-scope');
DELETE FROM scope_catalog WHERE name = 'verify';

UPDATE tokens
SET scopes = trim(replace(replace(' ' || scopes || ' ', ' verify ', ' verify-scope '), ' verify:read ', ' verify-scope:read '))
WHERE instr(' ' || scopes || ' ', ' verify ') > 0 OR instr(' ' || scopes || ' ', ' verify:read ') > 0;

UPDATE members
SET scopes = trim(replace(replace(' ' || scopes || ' ', ' verify ', ' verify-scope '), ' verify:read ', ' verify-scope:read '))
WHERE instr(' ' || scopes || ' ', ' verify ') > 0 OR instr(' ' || scopes || ' ', ' verify:read ') > 0;

UPDATE scope_catalog SET name = 'routes-scope'
WHERE name = 'routes' AND NOT EXISTS (
    SELECT 1 FROM scope_catalog other
    WHERE other.workspace_id = scope_catalog.workspace_id AND other.name = 'routes-scope');
DELETE FROM scope_catalog WHERE name = 'routes';

UPDATE tokens
SET scopes = trim(replace(replace(' ' || scopes || ' ', ' routes ', ' routes-scope '), ' routes:read ', ' routes-scope:read '))
WHERE instr(' ' || scopes || ' ', ' routes ') > 0 OR instr(' ' || scopes || ' ', ' routes:read ') > 0;

UPDATE members
SET scopes = trim(replace(replace(' ' || scopes || ' ', ' routes ', ' routes-scope '), ' routes:read ', ' routes-scope:read '))
WHERE instr(' ' || scopes || ' ', ' routes ') > 0 OR instr(' ' || scopes || ' ', ' routes:read ') > 0;

UPDATE scope_catalog SET name = 'audit-scope'
WHERE name = 'audit' AND NOT EXISTS (
    SELECT 1 FROM scope_catalog other
    WHERE other.workspace_id = scope_catalog.workspace_id AND other.name = 'audit-scope');
DELETE FROM scope_catalog WHERE name = 'audit';

UPDATE tokens
SET scopes = trim(replace(replace(' ' || scopes || ' ', ' audit ', ' audit-scope '), ' audit:read ', ' audit-scope:read '))
WHERE instr(' ' || scopes || ' ', ' audit ') > 0 OR instr(' ' || scopes || ' ', ' audit:read ') > 0;

UPDATE members
SET scopes = trim(replace(replace(' ' || scopes || ' ', ' audit ', ' audit-scope '), ' audit:read ', ' audit-scope:read '))
WHERE instr(' ' || scopes || ' ', ' audit ') > 0 OR instr(' ' || scopes || ' ', ' audit:read ') > 0;
