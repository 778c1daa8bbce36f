"""Package data: the official data splits as bit masks (see :mod:`harness.data.shipped`)."""
