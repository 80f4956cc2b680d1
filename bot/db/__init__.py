"""The database: one connection helper, the migrations, and one repository per group of tables."""
