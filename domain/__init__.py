"""The domain vocabulary shared by storage, channels and the policy."""
