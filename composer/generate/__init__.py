"""The composing floor: a request in, a piece out.

request (every parameter declared once), styles (names to labels, and their habits), seeds (the seed's
random streams), conditions (style experts and their product), batch (the state every pass over a batch
reads), steering (texture plans and grooves), sampling (a pass's cells drawn), draft (the draft loop),
infill (the infiller's Gibbs loops), loops (a loop's seam), generator (``Generator``: prepare, compose
forms and remixes, best_of, finish), layers (intensity layers) and stingers (short jingles). Imports
judge/ (best_of's judges) and the floors below it.
"""
