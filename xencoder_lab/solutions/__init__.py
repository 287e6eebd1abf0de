"""Solutions to the notebooks' exercises, one function per exercise, in ``solutions.nbNN`` (NN: the notebook).

Look here when stuck, after trying: each function has the exercise's name and signature, and its check in the
notebook (``xencoder_lab.exercises.nbNN``) accepts it.
"""
