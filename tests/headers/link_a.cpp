// Two translation units include the whole public API; linking them catches a function missing `inline`.
#include "reclite/reclite.hpp"

int reclite_link_b();

int main() { return reclite_link_b(); }
