"""智慧政协 network services."""
import warnings

# eventlet announces its deprecation on import; nameko 2.x runs on it by design.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
