-- require("threads"): skein's threads module, from the skein C module.
return require("skein").threads
