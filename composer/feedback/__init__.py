"""Learning from 👍/👎: the ratings export (records, export), the reward model (features, reward), the
realism critic, preference fine-tuning with KTO (rated_windows, kto, replay, finetune), the simulated
listening panel, and choosing which model version answers a request (bandit)."""
