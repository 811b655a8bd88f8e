module skein/bench/go

go 1.19
