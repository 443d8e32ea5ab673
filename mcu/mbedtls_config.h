/* mbedTLS 2.28 configuration for NoMQ on a microcontroller: only what nomq::mbedtls uses
 * (AES-256-CBC, SHA-256, HMAC through the MD layer, HKDF, CTR_DRBG). Selected with
 * -DMBEDTLS_CONFIG_FILE='"mbedtls_config.h"' by mcu/CMakeLists.txt. */
#ifndef NOMQ_MBEDTLS_CONFIG_H
#define NOMQ_MBEDTLS_CONFIG_H

#define MBEDTLS_AES_C
#define MBEDTLS_CIPHER_MODE_CBC
/* Tables in flash (const) instead of generated into RAM at start-up; one table instead of
 * four (about 6 KB less flash for a few percent of AES speed). */
#define MBEDTLS_AES_ROM_TABLES
#define MBEDTLS_AES_FEWER_TABLES
#define MBEDTLS_SHA256_C
#define MBEDTLS_SHA256_SMALLER
#define MBEDTLS_MD_C
#define MBEDTLS_CTR_DRBG_C
/* HKDF-SHA256 for the key schedule (nomq/key_schedule.hpp, MbedTlsCrypto::hkdf_sha256). */
#define MBEDTLS_HKDF_C
/* No OS entropy source: the device passes its hardware RNG as nomq::EntropySource. */
#define MBEDTLS_NO_PLATFORM_ENTROPY

#include "mbedtls/check_config.h"

#endif
