"""Every cached result, by what determined it: the identity of each kind of result and the declared code versions
(`identity`); the one atomic, identity-keyed store with its staleness rule and set-aside policy (`artifacts`);
evaluation records on top of it, the tidy results frame, and the paper's released numbers in the same schema
(`results`)."""
