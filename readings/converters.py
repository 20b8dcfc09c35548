"""URL converters the apps share: <sensor> and <sigfox_id>, registered on import."""

from django.urls import register_converter

from readings import sigfox


class SensorConverter:
    """The <sensor> of /data/<sensor>: a short name such as "1" or "kitchen"."""

    regex = sigfox.SENSOR_PATTERN

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class SigfoxIdConverter:
    """A device's hex Sigfox id, in any case, padded or not; stored in its one
    spelling (upper case, no leading zeros)."""

    regex = sigfox.DEVICE_ID_PATTERN

    def to_python(self, value: str) -> str:
        return sigfox.normalize_device_id(value)

    def to_url(self, value: str) -> str:
        return value


register_converter(SensorConverter, "sensor")
register_converter(SigfoxIdConverter, "sigfox_id")
