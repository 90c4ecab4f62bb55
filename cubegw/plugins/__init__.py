"""The vendor plug-in point for capabilities.

A vendor drops a module into a ``cubegw/plugins/`` directory (this one, or one
with no ``__init__.py`` under any ``sys.path`` entry, e.g. a separate ipk's
site-packages) holding module-level instances that provide both
``twisted.plugin.IPlugin`` and ``cubegw.capabilities.IGatewayCapability``
(subclass ``cubegw.capabilities.Capability``).  ``discover_providers()`` finds
them with ``twisted.plugin.getPlugins``; see docs/CAPABILITIES.md.
"""

from twisted.plugin import pluginPackagePaths

__path__.extend(pluginPackagePaths(__name__))
__all__ = []
