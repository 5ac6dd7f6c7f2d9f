"""One module per channel, each a small class satisfying ``channels.base.ChannelAdapter``."""
