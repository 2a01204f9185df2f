"""The composing floor: a request in, a piece out.

request (every parameter declared once), styles (names to labels, and their habits), sampling (one
cell's draw), generator (``Generator``: draft, infill, forms, loops, remixes, best_of), layers
(intensity layers) and stingers (short jingles). Imports judge/ (best_of's judges) and the floors
below it.
"""
