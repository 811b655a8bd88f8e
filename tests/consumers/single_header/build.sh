# Consumer test: only single_include/skein/skein.hpp, copied next to app.cpp,
# and a plain compiler command (the test puts its compiler first in PATH as c++).
set -e
# [readme:single_header]
c++ -std=c++20 -I single_include app.cpp -pthread -o app
# [/readme:single_header]
