"""Learning from 👍/👎: the ratings export, the reward model, preference fine-tuning (KTO),
the simulated listening panel, and choosing which model version answers a request."""
