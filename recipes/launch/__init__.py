"""Launch: the recipe's composed config and commands, the preflight and its checks, the SFT launch."""
