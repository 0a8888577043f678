import WispCore
