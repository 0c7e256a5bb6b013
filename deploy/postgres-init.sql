-- One database per service (compose runs this once, when the PostgreSQL volume is empty).
-- Each service reaches only its own through <SERVICE>_DATABASE_URL; the migrate job
-- creates the tables. Keep this list in step with services/catalog.py.
CREATE DATABASE xueji_identity;
CREATE DATABASE xueji_roster;
CREATE DATABASE xueji_housing;
CREATE DATABASE xueji_aid;
CREATE DATABASE xueji_transfer;
