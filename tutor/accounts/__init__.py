"""Accounts and privacy: sign-up and a throttled login, a student's export and deletion of their data, retention."""
