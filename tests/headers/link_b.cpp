#include "reclite/reclite.hpp"

int reclite_link_b() { return reclite::crc32("", 0) == 0u ? 0 : 1; }
