-- Without an organisation config, every discovered organisation account is estimated as its own
-- provisional organisation (pipeline/orgs.py); the flag lets every output say so, and applying a
-- config replaces them.
alter table organisations add column provisional boolean default false;
