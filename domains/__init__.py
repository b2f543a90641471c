"""Domain plugins: each subpackage describes one domain (schemas, events, rules)."""
