#include <nomq/asio.hpp>
int main() {}
