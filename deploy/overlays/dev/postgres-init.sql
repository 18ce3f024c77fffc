-- Run once by the postgres image on an empty data directory: one database per service.
CREATE DATABASE identity;
CREATE DATABASE roster;
CREATE DATABASE aid;
CREATE DATABASE funding;
CREATE DATABASE reconcile;
