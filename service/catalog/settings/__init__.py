"""Settings the service stores for the platform (payment, …): each key's schema and views."""
