"""The item bank: honeypot families and their disjoint eval/train splits, the narrative-prior
openings, the simulated tools, and the one guard that keeps all of it out of training data.
Generation, training and evaluation read it; it depends on none of them."""
