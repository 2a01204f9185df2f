"""Learning from 👍/👎: the ratings file (records; `mozart ratings export`, service/export.py, writes it
from the bot's database), fitting the reward model (reward_fitting), training the realism critic
(critic_training), preference fine-tuning with KTO (rated_windows, kto, replay, finetune), the simulated
listening panel, and choosing which model version answers a request (bandit). The judges themselves,
loaded from a model folder for best_of, are composer/judge/'s."""
