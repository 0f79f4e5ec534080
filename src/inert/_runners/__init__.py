"""Runner implementations (private; the public names are re-exported by ``inert``)."""
