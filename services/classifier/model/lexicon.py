"""A small multilingual dictionary of shop concepts: the bridge between the six languages.

Each concept lists word stems, as they look after :func:`features.normalize` (lower case, no
diacritics), in English, German, French, Swedish, Vietnamese and Spanish. A stem matches at the
start of a word; a stem ending in ``$`` must also end the word. Every concept found in a message
adds one feature ``@concept``; what a concept says about the topic is *learned*, from all six
languages at once, so a phrasing seen in one language helps the others.

The dictionary is written into the trained artifact, so a model always runs with the dictionary
it was trained with.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

CONCEPTS: dict[str, list[str]] = {
    # checkout / payment
    "paymethod": [
        "paypal", "klarna", "apple pay", "applepay", "google pay", "afterpay", "shop pay", "venmo",
        "amex", "visa$", "mastercard", "swish", "bizum", "momo$", "zalopay", "vnpay", "shopeepay",
        "sofortuberweisung", "giropay", "lydia", "alma$", "mercado pago", "oxxo", "lastschrift",
        "autogiro", "bank transfer", "uberweisung", "virement", "transferencia", "chuyen khoan",
        "vorkasse", "cash on delivery", "contra reembolso", "cod$", "thanh toan khi nhan",
        "paiement a la livraison", "cheque", "efectivo", "bar$", "barzahlung", "kontant",
        "tien mat", "cash$", "qr$", "ticket restaurant", "cheques vacances", "tickets restaurant",
    ],
    "pay": [
        "pay", "paid", "paying", "payment", "checkout", "check out", "bezahl", "zahl", "kasse",
        "paie", "paye", "payer", "reglement", "regler", "betal", "kassan", "thanh toan", "tra tien",
        "pago", "pagar", "pague", "pagu", "cobr", "charged", "abgebucht", "debit", "dragen",
        "tru tien", "descont", "cargo", "kreditkarte", "credit card", "card$", "cards$",
        "carte bancaire", "carte$", "cb$", "kortet", "kort$", "tarjeta", "the visa", "bankid",
        "3d secure", "otp$", "sms de verif", "codigo de verif", "code de valid",
    ],
    "declined": [
        "declin", "rejected", "refused", "not authori", "abgelehnt", "fehlgeschlagen", "refus",
        "non autoris", "nekas", "nekad", "neka$", "misslyck", "bi tu choi", "tu choi", "that bai",
        "khong thanh cong", "rechaz", "denegad", "no autoriz", "failed", "echoue",
    ],
    "installments": [
        "installment", "instalment", "pay later", "ratenzahlung", "raten", "spater bezahl",
        "plusieurs fois", "en 0 fois", "sans frais", "delbetal", "betala senare", "tra gop",
        "a plazos", "cuotas", "meses sin intereses", "pagar despues",
    ],
    "cart": [
        "cart", "basket", "warenkorb", "panier", "varukorg", "gio hang", "carrito",
    ],
    "giftcard": [
        "gift card", "giftcard", "geschenkgutschein", "geschenkkarte", "carte cadeau",
        "presentkort", "the qua tang", "phieu qua", "tarjeta regalo",
    ],
    "account": [
        "account", "konto", "kundenkonto", "compte", "tai khoan", "cuenta", "registr", "sign up",
        "guest", "gast$", "invite$", "invitado",
    ],
    "place_order": [
        "by phone", "per telefon", "telefonisch", "par telephone", "via telefon", "qua dien thoai",
        "por telefono", "hur bestaller", "hur gor man en order", "como hago un pedido",
        "como se hace el pedido", "como comprar", "how do i buy", "comment commander",
        "wie bestelle", "handla utan", "lan dau mua", "first time ordering", "primera compra",
        "premiere commande", "forsta gangen", "place an order", "placing an order",
        "how do i order", "how to order", "order by phone", "bestellen", "telefonisch bestell",
        "passer commande", "commander", "lagga en order", "bestalla", "dat hang", "hacer un pedido",
        "hacer el pedido", "comprar como",
    ],
    # order editing
    "cancel": [
        "avbryt", "avboka", "cancel", "storn", "annul", "avbest", "avbok", "makuler", "huy don",
        "huy$", "huy het", "cancela", "anula", "widerruf",
    ],
    "modify": [
        "au nom de", "mettre la facture", "el nombre", "nombre del pedido", "namnet pa",
        "ten nguoi nhan", "sua ten", "vao don", "trong don", "tang so luong", "so luong", "doi len",
        "retrasar el envio", "decaler", "verschieben", "skjuta pa", "doi ngay", "aplazar",
        "postpone", "reschedule", "instead of", "statt", "au lieu", "istallet", "thay vi",
        "en lugar de", "en vez de", "i picked the wrong", "wrong variant", "falsche variante",
        "mauvaise taille selectionnee", "valde fel", "chon nham", "elegi mal", "change", "edit",
        "amend", "modif", "update my", "switch", "andern", "ander ", "aendern", "umschreib",
        "changer", "andra", "doi sang", "doi dia chi", "doi mau", "doi size", "sua$", "sua lai",
        "sua don", "cambiar", "cambien", "cambia", "corregir", "rectific", "wrong address",
        "falsche adresse", "vertippt", "trompe", "skrev fel", "ghi sai", "nhap sai", "puse mal",
        "equivoque", "add one more", "hinzufug", "dazu", "ajouter", "lagga till", "them 0",
        "them mot", "anadir", "agregar", "remove", "entfern", "streich", "retirer un", "enlev",
        "ta bort", "stryk", "bo bot", "quitar", "quiten", "combine", "zusammenleg", "regrouper",
        "sla ihop", "gop", "juntar", "on hold", "zuruckhalt", "bloquer", "vanta med", "giu don",
        "retengan", "don't ship", "noch nicht versend", "ne l'expediez", "skicka inte", "khoan gui",
        "no lo envien",
    ],
    "address": [
        "address", "adresse", "adress", "dia chi", "direccion", "postcode", "post code", "zip",
        "plz", "postleitzahl", "code postal", "postnummer", "codigo postal", "hausnummer",
        "apartment", "apt$", "lagenhet", "so nha", "piso$",
    ],
    "placed_order": [
        "order #0", "don #0", "pedido #0", "commande #0", "bestellung #0", "order nr",
        "kiem tra don", "don minh", "don cua toi", "ordre", "my order", "the order", "order number",
        "ordernummer", "meine bestellung", "meiner bestellung", "bestellnummer", "ma commande",
        "la commande", "min order", "min bestallning", "ordern", "don hang", "don cua minh",
        "ma don", "mi pedido", "el pedido", "numero de pedido", "just ordered", "i ordered",
        "habe bestellt", "bestellt", "j'ai commande", "commande", "bestallde", "da dat", "dat roi",
        "pedi$", "hice el pedido", "order 0", "pedido 0", "commande 0", "bestellung 0", "don 0",
    ],
    # order status
    "where": [
        "kolla", "check on", "check my order", "check don", "nachschauen", "nach meiner bestellung",
        "regarder ma commande", "revisan", "xem giup don", "when will it ship",
        "quand sera expediee", "wann geht", "rausgeht", "nar skickas", "cuando sale",
        "khi nao hang", "bao gio giao", "hang toi", "lau roi", "lau qua", "when will my",
        "wann kommt", "quand vais-je", "quand est-ce que je", "nar kommer", "cuando llega",
        "cuando me llega", "where is", "wheres", "where's", "wo ist", "wo bleibt", "ou est",
        "ou en est", "est ou", "var ar", "vart tog", "dau roi", "o dau", "dau$", "donde esta",
        "que paso con", "what's going on", "status", "stand$", "statut", "estado", "trang thai",
        "any news", "update on", "neuigkeiten", "des nouvelles", "news$", "nagot nytt", "nat nytt",
        "uppdatering", "sao roi", "novedad",
    ],
    "tracking": [
        "track", "sendungsnummer", "sendungsverfolgung", "suivi", "spar", "ma van don", "van don",
        "theo doi", "seguimiento", "rastreo",
    ],
    "shipped_yet": [
        "shipped yet", "sent yet", "dispatched", "versendet", "verschickt", "schon unterwegs",
        "expedie", "partie", "parti$", "skickats", "skickat", "pa vag", "gui di chua", "gui chua",
        "di chua", "enviaron", "salio", "en camino", "on its way", "unterwegs", "en route",
        "transit",
    ],
    "delivered": [
        "delivered", "zugestellt", "geliefert", "livre$", "livree", "levererat", "levererades",
        "giao thanh cong", "da giao", "entregado",
    ],
    "not_received": [
        "not received", "haven't received", "never got", "never arrived", "nothing arrived",
        "still nothing", "nicht erhalten", "nichts erhalten", "nicht angekommen", "nichts gekommen",
        "noch nichts", "pas recu", "rien recu", "toujours rien", "inte fatt", "inget har kommit",
        "har inte fatt", "chua nhan", "chua thay", "chua toi", "no me ha llegado", "no me llego",
        "no he recibido", "no llega", "y nada", "nada$",
    ],
    "delay": [
        "ket$", "bi ket", "delay", "late", "verzog", "verspat", "retard", "forsen", "tre$", "cham$",
        "retras", "stuck", "hangt", "fest$", "bloque", "fastnat", "retenido", "held at",
        "zoll fest",
    ],
    "waiting": [
        "waiting", "still waiting", "warte", "j'attends", "attends", "vantar", "vantat", "dang cho",
        "cho lau", "esperando", "llevo",
    ],
    "confirmation": [
        "confirmation", "bestatigung", "bestellbestatigung", "orderbekraftelse", "bekraftelse",
        "xac nhan", "confirmacion",
    ],
    # pricing / discounts
    "discount": [
        "bon d'achat", "vale de", "gift with", "geschenk ab", "cadeau offert", "gava vid",
        "tang qua", "regalo con", "ma sinh nhat", "nhap ma", "ma nay", "ma moi", "ma gioi thieu",
        "birthday code", "geburtstagsgutschein", "bon d'anniversaire", "fodelsedagsrabatt",
        "cupon de cumpleanos", "gultig", "valid", "invalid", "ungultig", "invalide", "ogiltig",
        "khong hop le", "no es valido", "expired", "abgelaufen", "expire", "gatt ut", "het han",
        "caduc", "discount", "coupon", "promo", "voucher", "code$", "codes$", "rabatt", "gutschein",
        "reduc", "remise", "rabais", "bon de", "kod$", "koden", "rabattkod", "ma giam", "giam gia",
        "giam$", "descuento", "cupon", "codigo de desc", "off$", "prozent", "mellanskillnad",
        "difference", "differenz", "chenh lech", "diferencia",
    ],
    "sale": [
        "sale$", "sales$", "black friday", "schlussverkauf", "sommerschluss", "soldes", "solde",
        "rea$", "mellandagsrea", "khuyen mai", "rebaja", "rebajad", "oferta", "ventes privees",
        "reduziert", "nedsatt",
    ],
    "price": [
        "plein pot", "full price", "vollen preis", "fullpris", "precio completo", "gia goc",
        "priset", "prisen", "prix$", "precio$", "price", "prices", "cost", "how much", "expensive",
        "cheap", "preis", "kostet", "kosten", "teuer", "billig", "prix", "coute", "combien",
        "cher$", "pris$", "priser", "kostar", "dyr", "gia$", "gia bao", "bao nhieu tien",
        "bao nhieu", "tien$", "precio", "cuesta", "cuanto", "caro$", "barato", "vale$", "sale en",
    ],
    "vat": [
        "vat$", "tax", "mwst", "ttc$", "moms", "iva$", "thue vat",
    ],
    "loyalty": [
        "loyalty", "points", "reward", "referral", "bonusprogramm", "treuepunkt", "fidelite",
        "parrainage", "bonusprogram", "poang", "tich diem", "gioi thieu", "puntos", "fidelidad",
    ],
    "student": [
        "student", "etudiant", "studenten", "sinh vien", "estudiante", "military", "rentner",
        "pensionar",
    ],
    # product details
    "material": [
        "sulfat", "sulphate", "sulfate", "massiv", "massive", "veneer", "furnier", "placage",
        "chapado", "go cong nghiep", "go that", "lining", "futter", "doublure", "foder", "lop lot",
        "material", "fabric", "made of", "cotton", "wool", "leather", "linen", "sterling", "plated",
        "stoff", "baumwolle", "wolle", "leder", "matiere", "tissu", "coton", "laine", "cuir", "tyg",
        "bomull", "ull$", "lader", "chat lieu", "vai", "tela$", "algodon", "lana$", "cuero",
        "composition", "composicion", "ingredient", "inhaltsstoff", "innehall", "thanh phan",
        "vegan", "thuan chay", "nickel", "nickelfri", "hypoallergen", "parfum", "perfume",
        "fragrance", "huong lieu", "doublé", "double$", "gefuttert", "fodrad", "forro", "handmade",
        "handgemacht", "fait main", "handgjord", "hecha a mano", "lam thu cong", "echtes", "massif",
        "bac that", "plata de ley",
    ],
    "fit": [
        "true to size", "runs small", "fit$", "fits", "size chart", "size guide", "fallt",
        "klein aus", "grossentabelle", "groessentabelle", "taille grand", "taille petit",
        "guide des tailles", "normal i storleken", "storleksguide", "bang size", "form co chuan",
        "guia de tallas", "talla normal", "tallas", "what size", "which size", "welche grosse",
        "quelle taille", "vilken storlek", "mac size", "que talla", "sizes", "grossen", "tailles",
        "storlekar", "nhung size", "size nao",
    ],
    "dimensions": [
        "capacity", "servings", "portion", "liter", "litre", "kapacitet", "dung tich", "capacidad",
        "schrittlang", "entrejambe", "innerben", "inseam", "largo de pierna", "compatible",
        "kompatibel", "sirve para", "passt", "passer", "vua$", "vua khong", "pocket", "pockets",
        "poche", "poches", "fickor", "ficka", "bolsillo", "tui khong", "age$", "alter$", "alder",
        "tuoi", "edad", "how old", "ages", "dimension", "measurement", "how big", "how tall",
        "how long is", "length", "width", "height", "weight", "weigh", "inch", "cm$", "masse",
        "mase$", "wie gross", "wie lang", "wie schwer", "gewicht", "dimensions", "mesure",
        "longueur", "poids", "pese", "matt$", "mattet", "langd", "hur lang ar", "hur stor", "vager",
        "kich thuoc", "dai bao nhieu", "nang bao nhieu", "medidas", "mide", "largo", "pesa$",
        "peso$", "ml$", "zoll$", "pouces", "tum$", "fit a", "fits a", "passt ein", "rentre",
        "far plats", "de vua", "cabe", "big enough",
    ],
    "care": [
        "wash", "machine washable", "dishwasher", "microwave", "waschen", "waschbar",
        "spulmaschine", "mikrowelle", "machine$", "lave-vaisselle", "lave vaisselle", "micro-ondes",
        "tvatt", "diskmaskin", "mikro$", "giat", "may rua bat", "vi song", "lavar", "lavavajillas",
        "microondas", "induction", "induktion", "induccion", "waterproof", "wasserdicht",
        "impermeable", "vattentat", "chong nuoc", "outdoor", "draussen", "exterieur", "ute$",
        "exterior",
    ],
    "photos": [
        "photo", "picture", "pics$", "fotos", "bilder", "bild$", "images", "anh that", "hinh",
        "imagen", "real life", "in echt", "en vrai", "i verkligheten", "ngoai doi", "en persona",
    ],
    "engrave": [
        "custom$", "customis", "customiz", "sur mesure", "a medida", "theo mau rieng",
        "wunschfarbe", "egen farg", "engrav", "personali", "gravur", "graver", "gravure",
        "personnalis", "khac ten", "grabar", "personaliz", "monogram",
    ],
    "colors": [
        "colour", "color", "colors", "farbe", "farben", "couleur", "coloris", "farg", "farger",
        "mau$", "mau khac", "colores",
    ],
    # product interest
    "stock": [
        "slut$", "slutsald", "slut i lager", "tar slut", "do you have any more", "habt ihr noch",
        "vous avez encore", "har ni kvar", "con cai nao", "les queda", "tienen todavia",
        "falls vorhanden", "if you have it", "si vous l'avez", "om ni har", "neu con",
        "si lo tienen", "display model", "ausstellungsstuck", "exposition", "visningsexemplar",
        "trung bay", "de exposicion", "in stock", "stock", "available", "availability", "sold out",
        "restock", "back in", "lager", "verfugbar", "lieferbar", "ausverkauft", "wieder da",
        "wieder rein", "disponible", "dispo$", "rupture", "revient", "revenir", "finns kvar",
        "kvar", "tillbaka i lager", "con hang", "het hang", "nhap lai", "co hang", "con khong",
        "con ko", "con k$", "agotad", "reponer", "queda", "quedan", "todavia tienen",
        "siguen vendiendo", "still have", "still sell", "left$", "noch da", "encore", "il en reste",
        "zu haben", "fortfarande till salu", "sigue a la venta", "sigue disponible",
        "still for sale", "still there",
    ],
    "reserve": [
        "aside", "beiseite", "de cote", "undan", "giu lai", "reserve", "put aside", "hold one",
        "set aside", "reservier", "zurucklegen", "mettre de cote", "garder", "reserver",
        "reservera", "lagga undan", "giu giup", "de danh", "apartar", "guardan", "guardar",
    ],
    "preorder": [
        "pre-order", "preorder", "pre order", "vorbestell", "precommand", "forbestall", "dat truoc",
        "preventa", "reservar",
    ],
    "want_buy": [
        "ib gia", "bao gia giup", "i'd like this", "i'd like the", "i would like the",
        "ich hatte gern", "ich mochte die", "je voudrais le", "je voudrais la", "jag vill ha",
        "minh muon", "quisiera el", "quisiera la", "want one", "will eins", "en veux un",
        "vill ha en", "muon 0 cai", "want to buy", "want to get", "would like to buy",
        "i'd like to order", "i'd love", "interested in", "i want the", "i love", "kaufen",
        "mochte", "hatte gern", "hatte so gern", "interessiere", "acheter", "m'interesse",
        "interessee", "je voudrais", "kopa", "vill ha", "vill kopa", "intresserad", "muon mua",
        "muon lay", "quan tam", "lay cai", "comprar", "quiero", "quisiera", "me interesa",
        "me encanta", "need it", "brauche es", "il me le faut", "maste ha", "lo necesito", "me le",
        "this one", "den har tack", "celui-la", "genau die", "este porfa", "mua o dau",
        "where can i buy", "wo kann ich", "ou je peux", "var kan jag", "donde lo compro",
    ],
    "social": [
        "instagram", "insta$", "tiktok", "facebook", "pinterest", "your post", "latest post",
        "letzten post", "dernier post", "inlagg", "bai dang", "publicacion", "shop window",
        "schaufenster", "vitrine", "skyltfonster", "cua kinh", "escaparate", "homepage",
        "startseite", "page d'accueil", "startsidan", "trang chu", "pagina principal",
    ],
    # returns
    "return": [
        "ruckgab", "zuruck", "return it", "reklamation", "reclamation", "reclamacion", "khieu nai",
        "complaint", "return", "send back", "send it back", "sending back", "zuruckschick",
        "zurucksend", "rucksend", "zuruckgeb", "retoure", "retour", "renvoy", "retourn", "rendre",
        "retur", "skicka tillbaka", "lamna tillbaka", "tra hang", "tra lai", "gui tra", "doi tra",
        "devol", "devuelv", "withdraw", "retractation", "angra", "desistir", "rucktritt",
    ],
    "refund": [
        "refund", "money back", "my money", "erstatt", "geld zuruck", "mein geld", "ruckerstatt",
        "rembours", "aterbetal", "pengarna tillbaka", "pengar", "hoan tien", "reembols", "dinero",
        "store credit", "avoir$", "tillgodo",
    ],
    "exchange": [
        "exchange", "swap it", "umtausch", "tauschen", "echang", "byta", "byt ", "doi size",
        "doi sang size", "doi cai", "cambiar por", "cambio", "replacement", "ersatz",
        "remplacement", "ersattning", "thay the", "reemplazo",
    ],
    "damaged": [
        "bi hong", "hong roi", "da hong", "scratch", "kratzer", "rayure", "repa$", "rayon", "tray$",
        "bi tray", "sonder", "zerbroch", "noirci", "abgefarbt", "missfarg", "se puso negro",
        "bi den", "stained", "vet xuoc", "xuoc", "broken", "damaged", "defect", "faulty", "cracked",
        "crushed", "stopped working", "kaputt", "beschadig", "defekt", "sprung", "eingedruckt",
        "casse", "abime", "fele", "defectueux", "ecrase", "trasig", "skadad", "spricka", "mosad",
        "slutade funka", "vo$", "bi vo", "mop", "bi loi", "nut$", "bep", "roto", "rota$", "danad",
        "defectuos", "rajad", "aplastad", "stain", "fleck", "tache", "flack", "vet ban", "mancha",
        "zipper", "reissverschluss", "fermeture", "blixtlas", "khoa keo", "cremallera", "seam",
        "naht", "couture", "sommen", "duong may", "descosi", "bung$",
    ],
    "wrong_item": [
        "nham$", "khac han", "different product", "anderes produkt", "autre produit",
        "annan produkt", "san pham khac", "otro producto", "nothing to do with", "rien a voir",
        "nada que ver", "wrong item", "wrong size", "wrong colour", "wrong color", "falsche",
        "falschen", "mauvais", "mauvaise", "fel vara", "fel storlek", "fel farg", "giao nham",
        "gui sai", "sai size", "equivocad", "sent me the wrong", "instead i got",
    ],
    "missing": [
        "missing", "fehlt", "fehlten", "manque", "saknas", "thieu", "falta",
    ],
    "policy": [
        "policy", "richtlinie", "bedingungen", "politique", "chinh sach", "politica", "conditions",
        "villkor",
    ],
    # shipping
    "shipping": [
        "till jobbet", "au bureau", "en el trabajo", "ins buro", "toi cong ty", "to my office",
        "to work", "shipping", "ship$", "ships", "deliver", "delivery", "versand", "versend",
        "liefer", "lieferung", "livraison", "livrez", "livrer", "expedi", "envoi", "frakt",
        "leverans", "levererar", "skickar ni", "giao hang", "giao$", "ship ", "van chuyen",
        "gui hang", "envio", "envian", "enviar", "entrega", "port$", "porto", "courier", "carrier",
        "paqueteria", "transporteur", "fraktbolag", "versanddienst", "don vi van chuyen",
    ],
    "shipcost": [
        "shipping cost", "cost of shipping", "delivery cost", "versandkosten", "frais de port",
        "frais d'envoi", "fraktkostnad", "vad kostar frakten", "phi ship", "phi van chuyen",
        "costo de envio", "coste de envio", "gastos de envio",
    ],
    "free_shipping": [
        "free shipping", "free delivery", "freeship", "gratisversand", "versandkostenfrei",
        "kostenlos", "livraison offerte", "livraison gratuite", "fri frakt", "gratis frakt",
        "mien phi van chuyen", "envio gratis",
    ],
    "international": [
        "international", "abroad", "worldwide", "ausland", "etranger", "utomlands", "quoc te",
        "nuoc ngoai", "internacional", "extranjero", "to canada", "ship to", "deliver to",
        "liefert ihr", "livrez", "skickar ni till", "ship ra", "giao ra", "envian a",
    ],
    "customs": [
        "customs", "duties", "import dut", "zoll", "douane", "tull", "hai quan", "aduana",
        "arancel",
    ],
    "speed": [
        "express", "next day", "overnight", "same day", "fast", "schnell", "naechsten tag",
        "nachsten tag", "gleichen tag", "rapide", "lendemain", "jour meme", "snabb", "nasta dag",
        "samma dag", "hoa toc", "trong ngay", "nhanh", "urgente", "expres", "dia siguiente",
        "mismo dia", "by friday", "bis freitag",
    ],
    "how_long": [
        "hinner", "arrive by", "get here by", "arriver pour", "llega para", "llegue para", "kip$",
        "ankommen bis", "bis zum", "avant le", "fore helgen", "antes del", "before the weekend",
        "vor dem wochenende", "how long", "how many days", "how fast", "wie lange",
        "wie viele tage", "dauert", "combien de temps", "combien de jours", "delai", "hur lang",
        "hur manga dagar", "leveranstid", "lieferzeit", "bao lau", "may ngay", "cuanto tarda",
        "cuantos dias", "plazo", "tarda",
    ],
    "pickup": [
        "pick up", "pickup", "collect", "click and collect", "abhol", "retirer", "retrait", "hamta",
        "nhan tai cua hang", "qua lay", "den lay", "recoger", "recojo", "retiro", "packstation",
        "paketbox", "parcel locker", "point relais", "ombud", "punto de recogida",
    ],
    # store info
    "hours": [
        "nghi le", "nghi tet", "shop nghi", "opening hours", "open", "close", "closing",
        "offnungszeit", "geoffnet", "offen", "horaire", "ouvert", "ouvrez", "ferme", "oppet",
        "oppettid", "oppnar", "stangt", "stanger", "mo cua", "dong cua", "horario", "abren",
        "abierto", "cierran", "hours",
    ],
    "physical_store": [
        "bases", "base$", "baserade", "tienda en", "shop in", "laden in", "butik i", "boutique a",
        "cua hang o", "store near", "en persona", "in person", "live sehen", "en vrai",
        "pa riktigt", "tan noi", "studio", "physical", "store in", "shop located", "visit",
        "showroom", "workshop", "laden", "geschaft", "ladengeschaft", "filiale", "werkstatt",
        "boutique", "magasin", "atelier", "butik", "verkstad", "cua hang", "chi nhanh", "xuong",
        "tienda fisica", "taller", "located", "based", "sitzt ihr", "basee", "ligger", "o khu nao",
        "ubicad", "parking", "parken", "garer", "parkering", "gui xe", "aparcamiento", "wheelchair",
        "rollstuhl", "barrierefrei", "fauteuil", "rullstol", "xe lan", "silla de ruedas",
    ],
    "contact": [
        "phone", "email", "e-mail", "contact", "customer service", "telefon", "kontakt",
        "kundenservice", "kundendienst", "telephone", "joindre", "service client", "mejl",
        "kundtjanst", "so dien thoai", "lien he", "cham soc khach hang", "telefono", "contacto",
        "correo", "atencion al cliente",
    ],
    "company": [
        "mitarbeiter", "bei euch arbeiten", "work with you", "travailler chez", "jobba hos",
        "lam viec", "trabajar con", "appli", "ung dung", "hoi cho", "markets", "markten", "marches",
        "mercadillo", "ferias", "marknad", "massor", "salons$", "fairs", "company", "business",
        "family", "owner", "who owns", "legit", "firma", "seriose", "unternehmen",
        "familienbetrieb", "entreprise", "serieuse", "familial", "foretag", "seriost",
        "familjeforetag", "cong ty", "uy tin", "gia dinh", "empresa", "negocio", "seria$", "made$",
        "hergestellt", "fabrique", "tillverk", "san xuat", "fabrican", "privacy", "datenschutz",
        "donnees", "personuppgift", "bao mat", "datos personales", "terms", "agb", "impressum",
        "cgv", "kopvillkor", "dieu khoan", "terminos", "hiring", "recrut", "personal$", "tuyen",
        "contratando", "newsletter", "nyhetsbrev", "ban tin", "app$",
    ],
    # wholesale
    "wholesale": [
        "gia si", "lay si", "ban si", "hang si", "si le", "catalog", "katalog", "catalogue",
        "catalogo", "cong tac vien", "ban lai", "salja vidare", "vidareforsalj", "volymer",
        "large quantit", "grosse mengen", "grandes quantites", "gran volumen", "so luong lon",
        "tarif pro", "prix pro", "precio profesional", "gastro", "restaurantpris", "trade price",
        "faire$", "ankorstore", "wholesale", "bulk", "reseller", "resell", "retailer", "stockist",
        "distribut", "trade account", "trade discount", "b2b", "grosshandel", "wiederverkauf",
        "handler", "haendler", "gewerbe", "grossmenge", "prix de gros", "en gros", "revendeur",
        "revendre", "revente", "grossiste", "professionnel", "pros$", "grossist", "aterforsaljar",
        "foretagskonto", "dai ly", "nhap hang", "phan phoi", "buon", "por mayor", "mayorista",
        "revend", "distribuidor", "consign", "kommission", "depot-vente", "ky gui", "line sheet",
        "minimum order", "mindestbestell", "minimum de commande", "minsta order", "pedido minimo",
        "margin", "marge", "marginal", "margen", "chiet khau", "concept store", "stock your",
        "carry your", "ins sortiment", "referencer", "ta in ert", "llevar su marca",
        "sell your products", "vender sus productos",
    ],
    "corporate": [
        "conference", "konferenz", "congres", "congreso", "hoi nghi", "konferens", "restaurant",
        "restaurang", "nha hang", "restaurante", "staff", "personal$", "personalen", "nhan vien",
        "van phong", "kontor", "buro", "bureaux", "oficina", "event", "evento", "evenement",
        "su kien", "wedding", "hochzeit", "mariage", "brollop", "dam cuoi", "boda", "corporate",
        "our company", "my company", "office", "our team", "hotel", "cafe", "salon", "client gifts",
        "firmen", "unsere firma", "kundengeschenk", "seminaire", "notre societe", "ma societe",
        "vart foretag", "kundgava", "cong ty minh", "nuestra empresa", "mi empresa", "logo",
        "branded", "quote", "angebot", "devis", "offert", "bao gia", "presupuesto", "equipo",
        "team$", "lag$", "dong phuc",
    ],
    "pending": [
        "ej behandlad", "unfulfilled", "non traitee", "sin preparar", "noch offen", "chua gui",
        "pending", "ausstehend", "en attente de paiement", "en attente", "vantar pa betalning",
        "cho thanh toan", "pendiente", "processing", "in bearbeitung", "en preparation",
        "behandlas", "dang xu ly", "procesando", "label created",
    ],
    "courier": [
        "courier came", "delivery man", "delivery driver", "postman", "bote$", "zusteller",
        "livreur", "facteur", "budet", "brevbar", "shipper", "repartidor", "cartero", "wasn't home",
        "nicht zuhause", "etais absente", "inte hemma", "khong co nha", "no estaba",
    ],
    "parcel": [
        "samma paket", "same box", "one box", "one parcel", "un seul colis", "meme colis",
        "mismo paquete", "un solo paquete", "einem paket", "gui chung", "chung 0 goi", "parcel",
        "package", "paket", "colis", "paquete", "kien hang", "goi hang", "bultos",
    ],
    "order_today": [
        "order today", "ordered today", "heute bestelle", "heute bestellt", "commande aujourd'hui",
        "commande maintenant", "bestaller idag", "dat hom nay", "pido hoy", "compro hoy",
        "if i order", "wenn ich bestelle", "si je commande", "om jag bestaller", "neu dat",
        "si pido",
    ],
    "collab": [
        "collab", "kooperation", "samarbete", "hop tac quang cao", "colaboracion", "partnership",
        "influencer", "creator", "creatrice", "kreator", "content",
    ],
    # small talk (helps the no-topic class in every language)
    "greeting": [
        "hi$", "hey", "hello", "hallo", "moin", "servus", "guten tag", "guten morgen", "bonjour",
        "bonsoir", "salut", "coucou", "hej", "tjena", "halla", "god morgon", "chao", "xin chao",
        "alo", "hola", "buenas", "buenos dias", "good morning",
    ],
    "thanks": [
        "thank", "thx", "ty$", "danke", "dankeschon", "merci", "tack", "tusen tack", "cam on",
        "tks", "gracias", "cheers",
    ],
    "ack": [
        "ok$", "okay", "oke$", "okej", "alright", "alles klar", "d'accord", "ca marche", "toppen",
        "perfect", "perfekt", "parfait", "perfecto", "vale$", "dale$", "da$", "vang", "duoc roi",
        "got it", "verstanden", "compris", "uppfattat", "entendido", "sounds good", "klingt gut",
        "super$", "genial", "great", "cool$", "nice",
    ],
    "farewell": [
        "bye", "goodbye", "tschuss", "ciao", "au revoir", "a plus", "hej da", "hejda", "tam biet",
        "adios", "chao$", "see you", "bis dann", "nos vemos", "good night", "gute nacht",
        "bonne nuit", "god natt", "ngu ngon", "buenas noches", "have a nice day", "schonen tag",
        "bonne journee", "ha en bra dag", "buen dia",
    ],
    "human": [
        "human", "real person", "anyone there", "are you there", "mensch", "jemand da", "quelqu'un",
        "vraie personne", "manniska", "nagon dar", "nan dar", "nguoi that", "nhan vien", "co ai",
        "persona real", "alguien", "bot$", "robot",
    ],
}


class Lexicon:
    """The concepts of a text (normalised as by :func:`features.normalize`).

    Stems are looked up at every word start through an index on their first two characters,
    so finding the concepts of a message costs a few dictionary look-ups per word.
    """

    def __init__(self, concepts: Mapping[str, Sequence[str]]) -> None:
        self.concepts = {k: list(v) for k, v in concepts.items()}
        index: dict[str, list[tuple[str, bool, str]]] = {}
        for name, stems in self.concepts.items():
            for stem in stems:
                bounded = stem.endswith("$")
                text = stem.rstrip("$")
                if len(text) < 2:
                    raise ValueError(f"stem too short: {stem!r}")
                index.setdefault(text[:2], []).append((text, bounded, name))
        self._index = {k: sorted(v, key=lambda e: -len(e[0])) for k, v in index.items()}

    def find(self, normalized: str) -> list[str]:
        index, found = self._index, set()
        for match in _WORD_START.finditer(normalized):
            pos = match.start()
            for stem, bounded, name in index.get(normalized[pos : pos + 2], ()):
                if name in found or not normalized.startswith(stem, pos):
                    continue
                end = pos + len(stem)
                if bounded and end < len(normalized) and normalized[end].isalnum():
                    continue
                found.add(name)
        return sorted(found)


_WORD_START = re.compile(r"(?<![^\W_])[^\W_]")
