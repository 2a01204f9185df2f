"""Learning from 👍/👎: the ratings export (records, export), fitting the reward model (reward_fitting),
training the realism critic (critic_training), preference fine-tuning with KTO (rated_windows, kto,
replay, finetune), the simulated listening panel, and choosing which model version answers a request
(bandit). The judges themselves, loaded from a model folder for best_of, are composer/judge/'s."""
