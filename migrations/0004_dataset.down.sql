DROP TABLE dataset;
