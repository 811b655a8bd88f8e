# Consumer test: pkg-config against an install prefix (the test sets
# PKG_CONFIG_PATH=<prefix>/share/pkgconfig and puts its compiler first in PATH as c++).
set -e
# [readme:pkgconfig]
c++ -std=c++20 app.cpp $(pkg-config --cflags --libs skein) -o app
# [/readme:pkgconfig]
