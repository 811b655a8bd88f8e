-- require("thread"): skein's thread module, from the skein C module.
return require("skein").thread
