"""Theory of elasticity: token trees, Huffman compression, size-weighted mixtures and their derivatives."""
