# Start log probabilities (a small hand-made table for tests).
from __future__ import unicode_literals

P = {'B': -0.25, 'E': -3.14e+100,
     "M": -3.14e100, u'S': -1.5}
