"""The network floor: the grid networks, their training, and the model folder that carries them.

model (``GridModel``), checkpoint (one network's weights and config), folder (``ComposerFolder``: the
composer's folder, its one owner), data (windows and masks), train (the loop), distributed (DDP),
recipe (the stages that make a composer), style_facts, texture and originality (what ships beside
the weights), card (the model card). Imports music/ and corpus/ only.
"""
