-- require("runtime"): skein's runtime module, from the skein C module.
return require("skein").runtime
