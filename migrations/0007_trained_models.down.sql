DROP TABLE model_training_failures;
DROP TABLE trained_models;
