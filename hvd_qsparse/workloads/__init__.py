"""The jobs' workloads: the digits data and MLP, and the convex logistic-regression problem."""
