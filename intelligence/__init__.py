"""icos-intelligence: the deciding layer (domain types, engine, stores, policies, actuator)."""
