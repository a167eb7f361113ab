"""The metadata quorum's state machine (KRaft's MetadataImage/MetadataDelta) and the
active controller's decisions, which produce records and never mutate state."""
